"""Local fake Google Cloud admin APIs speaking the REST/JSON wire format of the real client libraries
(`server`: the HTTP framework, `common`: what several fakes share, `cloud`: pointing bootstrap at fakes in tests)."""
