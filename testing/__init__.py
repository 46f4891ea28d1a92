"""Test-only hooks that production code calls and that do nothing unless a test turns them on."""
