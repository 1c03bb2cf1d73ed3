# billing: a legacy service outside the mesh, registered without a sidecar.
# The mesh reaches it through the terminating gateway tgw
# (deploy/demo/terminating-gateway.hcl).
service {
  name    = "billing"
  id      = "billing-1"
  address = "127.0.0.1"
  port    = 9003
  check {
    name     = "billing-1 HTTP"
    http     = "http://127.0.0.1:9003/"
    interval = "2s"
    timeout  = "1s"
  }
}
