# api instance 2 and its sidecar, as any Consul service-mesh user registers it.
service {
  name = "api"
  id   = "api-2"
  port = 9002
  meta = { version = "v1" }
  check {
    name     = "api-2 HTTP"
    http     = "http://127.0.0.1:9002/"
    interval = "2s"
    timeout  = "1s"
  }
  connect {
    sidecar_service {
      port = 21002
    }
  }
}
