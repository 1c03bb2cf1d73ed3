package router

import (
	"net/http"

	"github.com/weft-mesh/weft/proxy/localreply"
	"github.com/weft-mesh/weft/proxy/route"
)

// serveDirect answers a request whose route has a direct response, as
// Envoy's router does: the response header changes of the route, its
// virtual host and its table apply, then the status and body are sent.
// No cluster is looked up, no limit counted, no upstream touched; request
// header changes do not matter.
func serveDirect(w http.ResponseWriter, r *http.Request, rt *route.Route) {
	mutations := rt.ResponseMutations(nil)
	mutations.Apply(w.Header())
	localreply.WriteDirect(w, r, rt.Action.Direct.Status, rt.Action.Direct.Body)
}
