package impl

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// Metrics counts what one server process does, in Prometheus form. Labels name
// route templates, forms, outcomes and webhook ids, never a token or key value.
// A nil *Metrics counts nothing, so code that runs without one needs no checks.
type Metrics struct {
	registry *prometheus.Registry

	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	revocations   *prometheus.CounterVec
	revokedTokens *prometheus.CounterVec
	exchanges     *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	reaped        prometheus.Counter
	pruned        prometheus.Counter
}

// Revocation forms, as the metrics name them.
const (
	formToken       = "token"
	formID          = "id"
	formUser        = "user"
	formUserAndApp  = "user_and_application"
	formUserExcept  = "user_except_one"
	formApplication = "application"
	formLogout      = "logout"
	formLogoutAll   = "logout_global"
	formOAuth       = "oauth2_revoke"
)

func logoutForm(global bool) string {
	if global {
		return formLogoutAll
	}
	return formLogout
}

// NewMetrics makes the metrics of one server over st: its own counters, the
// database pool's statistics, the webhook backlog (read from the database at
// each scrape, so every process sharing it reports the same backlog), and the Go
// runtime's and the process's metrics.
func NewMetrics(st *store.Store, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.Default()
	}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshd_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "refreshd_http_request_duration_seconds",
			Help:    "Time from receiving a request to its answer, by route template, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshd_revocations_total",
			Help: "Revoke requests carried out, by form (token, id, user, user_and_application, user_except_one, application, logout, logout_global, oauth2_revoke) and outcome (revoked, not_found).",
		}, []string{"form", "outcome"}),
		revokedTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshd_revoked_tokens_total",
			Help: "Refresh tokens revoked, by the form of the request that revoked them.",
		}, []string{"form"}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshd_exchanges_total",
			Help: "Refresh-token exchanges, by outcome (issued, invalid_token, rejected, user_gone, error).",
		}, []string{"outcome"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshd_webhook_deliveries_total",
			Help: "Webhook delivery attempts made by this process, by webhook id and outcome (delivered, failed).",
		}, []string{"webhook", "outcome"}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refreshd_reaper_deleted_tokens_total",
			Help: "Expired refresh tokens deleted by the reaper.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refreshd_pruned_events_total",
			Help: "Delivered events deleted after the retention period.",
		}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.revocations, m.revokedTokens, m.exchanges, m.deliveries,
		m.reaped, m.pruned,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(st.DB().DB, "refreshd"),
		&backlogCollector{store: st, log: log})
	return m
}

// Handler serves the metrics in Prometheus' text format. A metric that cannot
// be read (the backlog while the database is down) is left out; the rest is served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func (m *Metrics) request(route, method string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(route, method, code).Inc()
	m.latency.WithLabelValues(route, method, code).Observe(elapsed.Seconds())
}

// revoked counts one revoke request carried out in form and the tokens it
// revoked; a single-token form that found nothing is not_found.
func (m *Metrics) revoked(form string, tokens int64, found bool) {
	if m == nil {
		return
	}
	outcome := "revoked"
	if !found {
		outcome = "not_found"
	}
	m.revocations.WithLabelValues(form, outcome).Inc()
	m.revokedTokens.WithLabelValues(form).Add(float64(tokens))
}

func (m *Metrics) exchanged(outcome string) {
	if m != nil {
		m.exchanges.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) delivery(webhook uuid.UUID, ok bool) {
	if m == nil {
		return
	}
	outcome := "delivered"
	if !ok {
		outcome = "failed"
	}
	m.deliveries.WithLabelValues(webhook.String(), outcome).Inc()
}

func (m *Metrics) reapedTokens(n int64) {
	if m != nil && n > 0 {
		m.reaped.Add(float64(n))
	}
}

func (m *Metrics) prunedEvents(n int64) {
	if m != nil && n > 0 {
		m.pruned.Add(float64(n))
	}
}

// backlogCollector reads each webhook's undelivered events at scrape time.
type backlogCollector struct {
	store *store.Store
	log   *slog.Logger
}

var (
	backlogDesc = prometheus.NewDesc("refreshd_webhook_backlog_events",
		"Events recorded for a webhook and not yet delivered to it.", []string{"webhook"}, nil)
	oldestDesc = prometheus.NewDesc("refreshd_webhook_oldest_pending_event_age_seconds",
		"Age of the oldest event not yet delivered to a webhook; 0 when none waits.", []string{"webhook"}, nil)
)

func (b *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestDesc
}

func (b *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := b.store.Backlogs(ctx, nil)
	if err != nil {
		b.log.Warn("metrics: read the webhook backlog", "error", err)
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	now := store.NowMillis()
	for _, r := range rows {
		id := r.WebhookID.String()
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(r.Pending), id)
		age := 0.0
		if r.Pending > 0 && r.OldestPendingInstant != nil {
			age = max(0, float64(now-*r.OldestPendingInstant)/1000)
		}
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age, id)
	}
}

// countExchanges counts each exchange by its outcome, read from what the
// handler returned: a new access token, the one refusal that means the token is
// no good, any other refusal of the request, a token whose user was deleted
// meanwhile (404), or a failure of the server.
func (s *Server) countExchanges(f gen.StrictHandlerFunc, operationID string) gen.StrictHandlerFunc {
	if operationID != "ExchangeRefreshTokenForJWT" {
		return f
	}
	return func(c echo.Context, request any) (any, error) {
		resp, err := f(c, request)
		var ae *apiError
		switch {
		case err == nil:
			if _, gone := resp.(gen.ExchangeRefreshTokenForJWT404Response); gone {
				s.metrics.exchanged("user_gone")
			} else {
				s.metrics.exchanged("issued")
			}
		case errors.As(err, &ae) && ae.has("refreshToken", "[invalid]refreshToken"):
			s.metrics.exchanged("invalid_token")
		case errors.As(err, &ae):
			s.metrics.exchanged("rejected")
		default:
			s.metrics.exchanged("error")
		}
		return resp, err
	}
}
