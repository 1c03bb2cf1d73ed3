# dc2 denies web of peer dc1 calling api; a web of dc2 would not match.
Kind = "service-intentions"
Name = "api"
Sources = [
  { Name = "web", Peer = "dc1", Action = "deny" },
]
