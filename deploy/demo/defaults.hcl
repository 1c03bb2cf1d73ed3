# api speaks HTTP, so sidecars balance it per request, not per connection.
Kind     = "service-defaults"
Name     = "api"
Protocol = "http"
