# dc2: api speaks HTTP, so sidecars balance it per request and enforce its
# intentions per request, peers' included.
Kind     = "service-defaults"
Name     = "api"
Protocol = "http"
