"""Virtual trials: specs, runner, endpoints and statistics."""
