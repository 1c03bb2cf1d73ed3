# Deny web → api: the demo writes this to show intentions taking effect.
Kind = "service-intentions"
Name = "api"
Sources = [
  { Name = "web", Action = "deny" },
]
