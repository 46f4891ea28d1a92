"""Where the warehouse comes from: an external PostgreSQL or the embedded one (`embedded`), how every
process reaches it (`connection`), who may do what in it (`roles`: the owner the platform connects as,
the read-only analyst), and the versioned migrations of the platform's own schemas."""
