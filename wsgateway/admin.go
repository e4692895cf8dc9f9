package wsgateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler returns the operator endpoints, GET /metrics and GET /v1/members. Handler
// serves them too unless Config.SeparateAdmin is set.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	g.adminRoutes(mux)
	return mux
}

func (g *Gateway) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/members", g.serveMembers)
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.registry, promhttp.HandlerOpts{}))
}
