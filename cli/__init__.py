"""`dataplatform`: the operator's command line."""
