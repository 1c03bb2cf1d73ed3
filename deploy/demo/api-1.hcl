# api instance 1 and its sidecar, as any Consul service-mesh user registers it.
service {
  name = "api"
  id   = "api-1"
  port = 9001
  meta = { version = "v1" }
  check {
    name     = "api-1 HTTP"
    http     = "http://127.0.0.1:9001/"
    interval = "2s"
    timeout  = "1s"
  }
  connect {
    sidecar_service {
      port = 21001
    }
  }
}
