"""Entity models, one module per source system."""
