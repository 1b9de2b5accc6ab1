package adminapi

import (
	"context"
	"embed"
	"net/http"
	"path"

	"github.com/zeroae/zae-limiter-go/shared/httpapi"
)

// Paths of the usage dashboard: a page and its assets, under /v1/system/ so that the deployed
// API's existing admin route (and IAM authorization) serves it.
const (
	PathDashboard      = "/v1/system/dashboard"
	PathDashboardAsset = "/v1/system/dashboard/{file}"
)

// dashboardFiles are the page (plain HTML, CSS and JavaScript: no build step).
//
//go:embed dashboard/index.html dashboard/app.js dashboard/style.css
var dashboardFiles embed.FS

// dashboardCSP lets the page load only its own script and style and call only its own API.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// DashboardRoutes returns the routes of the usage dashboard:
//
//	GET /v1/system/dashboard          the page
//	GET /v1/system/dashboard/{file}   app.js, style.css
//
// The page reads the usage routes of the same API from the browser, so it works wherever the
// browser may call them: `make run` directly, a deployed (IAM-authorized) API through
// `zl proxy`, which signs each request.
func DashboardRoutes() []httpapi.Route {
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: PathDashboard, Handler: serveDashboard},
		{Method: http.MethodGet, Pattern: PathDashboardAsset, Handler: serveDashboard},
	}
}

func serveDashboard(_ context.Context, r *httpapi.Request) *httpapi.Response {
	name, ctype := "index.html", "text/html; charset=utf-8"
	if r.Route == PathDashboardAsset {
		switch name = r.Param("file"); path.Ext(name) {
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		}
	}
	body, err := dashboardFiles.ReadFile("dashboard/" + name)
	if err != nil || name == "index.html" && r.Route == PathDashboardAsset {
		return httpapi.JSON(http.StatusNotFound, httpapi.ErrorBody{Error: httpapi.CodeNotFound, Message: "no such dashboard file"})
	}
	return &httpapi.Response{Status: http.StatusOK, Body: body, Header: map[string]string{
		"content-type":            ctype,
		"cache-control":           "no-cache",
		"content-security-policy": dashboardCSP,
		"x-content-type-options":  "nosniff",
	}}
}
