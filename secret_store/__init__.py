"""Where secret values come from: metadata holds `{"type": "secret", "key": "..."}`, a store holds the value."""
