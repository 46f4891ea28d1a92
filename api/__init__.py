"""The platform's HTTP service (`dataplatform serve`): sources' webhooks and the operator's API."""
