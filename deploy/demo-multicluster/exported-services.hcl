# dc2 exports api to its peer dc1 (the name dc2 gave the peering).
Kind = "exported-services"
Name = "default"
Services = [
  { Name = "api", Consumers = [{ Peer = "dc1" }] },
]
