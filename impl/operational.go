package impl

import (
	"embed"
	"net/http"

	"github.com/labstack/echo/v4"

	"refreshd"
)

// The API reference page and, when the build put it there, the Redoc bundle
// that renders it (see apidocs/README.md).
//
//go:embed apidocs/index.html apidocs/redoc*
var apidocs embed.FS

// docsPolicy lets the page load only what this server serves. Redoc injects its
// styles inline, searches in a worker made from a blob, and would fetch its logo
// from elsewhere, which this forbids.
const docsPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// registerOperational adds the routes that are not part of the API contract:
// the contract itself, its reference page and, with metrics, /metrics. It
// returns their route templates, which request validation skips.
func (s *Server) registerOperational(e *echo.Echo, metrics bool) map[string]bool {
	routes := map[string]bool{}
	get := func(path string, h echo.HandlerFunc) {
		e.GET(path, h)
		routes[path] = true
	}
	get("/openapi.yaml", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", refreshd.OpenAPI)
	})
	page, _ := apidocs.ReadFile("apidocs/index.html")
	bundle, bundleErr := apidocs.ReadFile("apidocs/redoc.standalone.js")
	get("/docs", func(c echo.Context) error {
		if bundleErr != nil {
			return c.HTML(http.StatusOK, missingBundlePage)
		}
		c.Response().Header().Set("Content-Security-Policy", docsPolicy)
		return c.HTMLBlob(http.StatusOK, page)
	})
	get("/docs/", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "../docs") })
	get("/docs/redoc.standalone.js", func(c echo.Context) error {
		if bundleErr != nil {
			return echo.ErrNotFound
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=86400")
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", bundle)
	})
	get("/docs/redoc.LICENSE", func(c echo.Context) error {
		license, err := apidocs.ReadFile("apidocs/redoc.LICENSE")
		if err != nil {
			return echo.ErrNotFound
		}
		return c.Blob(http.StatusOK, "text/plain; charset=utf-8", license)
	})
	if metrics {
		get("/metrics", echo.WrapHandler(s.metrics.Handler()))
	}
	return routes
}

// missingBundlePage stands in for the reference when the binary was built
// without the Redoc bundle (`go build` alone; `make build` fetches it).
const missingBundlePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>refreshd API reference</title></head>
<body><p>This build of refreshd has no API reference viewer: build it with <code>make build</code>.
The contract itself is at <a href="openapi.yaml">openapi.yaml</a>.</p></body></html>
`
