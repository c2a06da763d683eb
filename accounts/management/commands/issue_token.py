from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.tokens import token_issue


class Command(BaseCommand):
    help = "Print an API token for a user (the last line of output is the token)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        try:
            token = token_issue(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {username!r}: run `python manage.py seed_demo` for 'admin'") from None
        self.stdout.write(token)
