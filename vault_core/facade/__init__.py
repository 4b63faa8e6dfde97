"""The vault facade, split by concern: every public operation lives in one of these mixins."""
