"""HTTP plumbing the apps share: JSON API helpers, middleware, health probes, HTTP metrics."""
