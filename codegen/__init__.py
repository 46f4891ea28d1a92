"""Which dbt files follow from metadata: the generated sources, thin models and their properties."""
