"""The development stack: embedded servers, the supervisor of every process, one process wrapper."""
