# The terminating gateway tgw answers for billing, outside the mesh: it
# presents billing's identity to the mesh, enforces billing's intentions,
# and forwards to billing's instances in plaintext (add CAFile and SNI for
# TLS).
Kind = "terminating-gateway"
Name = "tgw"
Services = [
  { Name = "billing" },
]
