"""The commands: one module each, thin over jobs/ and sweep/."""
