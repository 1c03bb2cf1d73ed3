# dc1's api fails over to api of peer dc2 when none of dc1's instances is
# healthy (weft-proxy, Envoy and Consul read it the same way).
Kind = "service-resolver"
Name = "api"
Failover = {
  "*" = {
    Targets = [{ Peer = "dc2" }]
  }
}
