"""Where the warehouse comes from: an external PostgreSQL or the embedded one (`embedded`), how every
process reaches it (`connection`), and the versioned migrations of the platform's own schemas."""
