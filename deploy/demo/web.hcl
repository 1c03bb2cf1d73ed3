# web calls api through its sidecar's upstream listener on 127.0.0.1:9191,
# and billing, outside the mesh, on 127.0.0.1:9292.
service {
  name = "web"
  id   = "web-1"
  port = 8080
  check {
    name     = "web-1 HTTP"
    tcp      = "127.0.0.1:8080"
    interval = "2s"
    timeout  = "1s"
  }
  connect {
    sidecar_service {
      port = 21000
      proxy {
        upstreams = [
          {
            destination_name   = "api"
            local_bind_port    = 9191
          },
          {
            destination_name   = "billing"
            local_bind_port    = 9292
          }
        ]
      }
    }
  }
}
