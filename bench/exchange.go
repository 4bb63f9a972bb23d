package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/google/uuid"

	"refreshd/impl"
)

// exchange exchanges reusable refresh tokens for JWTs through POST
// /api/jwt/refresh (no API key, as a client calls it), and runs the server's
// exchange transaction through the store from the load generator. With the
// default application configuration (reusable, fixed expiry) neither changes a
// token, so both pools must be whole afterwards.
func (h *harness) exchange(ctx context.Context, c, count int, pools map[string]pool) (Row, error) {
	name := fmt.Sprintf("exchange/c%d", c)
	w := h.sc.warmup(c)
	srvSpec := h.serverSpec(opExchange, c, w, count)
	srvSpec.Pool, srvSpec.APIKey = pools["server"], ""
	srv, err := h.load(ctx, srvSpec, loadOpts{name: name, measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	rawSpec := h.rawSpec(opExchange, c, w, count)
	rawSpec.Pool = pools["raw"]
	raw, err := h.load(ctx, rawSpec, loadOpts{name: name + " (raw)", measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	row := newRow(name, kindExchange, "requests/s, one exchange each", c, &srv, &raw)
	for _, mode := range []string{"server", "raw"} {
		p := pools[mode]
		if err := h.expect(ctx, &row, mode+" pool (reusable, kept)", p.App, int64(p.Size)); err != nil {
			return row, err
		}
	}
	return row, nil
}

// validateBearers is how many access tokens the validation runs cycle through.
const validateBearers = 64

// validate checks access tokens through GET /api/jwt/validate (no API key, as a
// resource server calls it): signature, expiry and (ours) that the session is
// live. The raw side runs the session lookup alone. The access tokens come from
// exchanging tokens of the server's exchange pool.
func (h *harness) validate(ctx context.Context, c, count int, pools map[string]pool) (Row, error) {
	name := fmt.Sprintf("validate/c%d", c)
	p := pools["server"]
	var bearers []string
	for i := 0; i < validateBearers && i < p.Size; i++ {
		var out struct {
			Token string `json:"token"`
		}
		if err := h.request(ctx, http.MethodPost, "/api/jwt/refresh",
			map[string]string{"refreshToken": tokenValue(h.seed, p.Name, i)}, &out); err != nil {
			return Row{Name: name}, fmt.Errorf("%s: an access token to validate: %w", name, err)
		}
		bearers = append(bearers, out.Token)
	}
	w := h.sc.warmup(c)
	srvSpec := h.serverSpec(opValidate, c, w, count)
	srvSpec.APIKey, srvSpec.Bearers = "", bearers
	srv, err := h.load(ctx, srvSpec, loadOpts{name: name, measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	rawSpec := h.rawSpec(opValidate, c, w, count)
	rawSpec.Bearers = bearers
	raw, err := h.load(ctx, rawSpec, loadOpts{name: name + " (raw)", measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	row := newRow(name, kindValidate, "requests/s, one access token each", c, &srv, &raw)
	err = h.expect(ctx, &row, "server exchange pool (validation changes nothing)", p.App, int64(p.Size))
	return row, err
}

// webhookWait is how long the harness waits, after the server run, for the
// dispatcher to deliver the run's events.
const webhookWait = 5 * time.Second

// revokeTokensWebhook is revoke by token (query form) with one global webhook
// for the revoke event, pointing at a receiver in this process that answers 204,
// and the dispatcher running in the server process during the server run. The
// raw side runs the same statement, whose record_event fans the event out to
// the webhook as well, so the database does the same work; the dispatcher is
// stopped before it, so that the raw run is not charged for delivering. The
// webhook (and with it the raw run's undelivered deliveries) is deleted at the
// end.
func (h *harness) revokeTokensWebhook(ctx context.Context, pools map[string]pool) (row Row, err error) {
	c, count := h.sc.WebhookConcurrency, h.sc.WebhookCount
	name := fmt.Sprintf("revoke-token/webhooks/c%d", c)
	row.Name = name

	var mu sync.Mutex
	seen := map[string]bool{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get(impl.EventIDHeader); id != "" {
			mu.Lock()
			seen[id] = true
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	received := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return int64(len(seen))
	}

	var created struct {
		Webhook struct {
			ID uuid.UUID `json:"id"`
		} `json:"webhook"`
	}
	if err := h.request(ctx, http.MethodPost, "/api/webhook", map[string]any{"webhook": map[string]any{
		"url": recv.URL, "global": true, "description": "refreshd benchmark receiver",
		"eventsEnabled": map[string]bool{"jwt.refresh-token.revoke": true},
	}}, &created); err != nil {
		return row, fmt.Errorf("%s: creating the webhook: %w", name, err)
	}
	hookID := created.Webhook.ID
	defer func() {
		// A fresh context: the webhook must go even when the run was cancelled.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if derr := h.request(dctx, http.MethodDelete, "/api/webhook/"+hookID.String(), nil, nil); derr != nil && err == nil {
			err = fmt.Errorf("%s: deleting the webhook: %w", name, derr)
		}
	}()

	dctx, stopDispatcher := context.WithCancel(ctx)
	dispatcherDone := make(chan struct{})
	go func() {
		defer close(dispatcherDone)
		impl.RunDispatcher(dctx, h.env.st, impl.DispatcherConfig{
			Logger: slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}()
	stop := func() {
		stopDispatcher()
		<-dispatcherDone
	}
	defer stop()

	w := h.sc.warmup(c)
	srvSpec := h.serverSpec(opRevokeTokenQuery, c, w, count)
	srvSpec.Pool = pools["server"]
	srv, err := h.load(ctx, srvSpec, loadOpts{name: name, measured: true})
	if err != nil {
		return row, err
	}
	atEnd := received()
	// Every revocation of the server run (warm-up included) made one delivery.
	var events int64
	if err := h.env.st.DB().GetContext(ctx, &events, `SELECT count(*) FROM deliveries WHERE webhook_id = $1`, hookID); err != nil {
		return row, err
	}
	t0 := time.Now()
	for received() < events && time.Since(t0) < webhookWait && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	waited, delivered := time.Since(t0), received()
	stop()

	rawSpec := h.rawSpec(opRevokeTokenQuery, c, w, count)
	rawSpec.Pool = pools["raw"]
	raw, err := h.load(ctx, rawSpec, loadOpts{name: name + " (raw)", measured: true})
	if err != nil {
		return row, err
	}
	row = newRow(name, kindWebhook, "requests/s, one token each, webhook + dispatcher", c, &srv, &raw)
	row.WebhookEvents, row.WebhookDelivered, row.WebhookAtEnd = ptr(events), ptr(delivered), ptr(atEnd)
	row.WebhookWaitMs = ms(waited)
	for mode, m := range map[string]measured{"server": srv, "raw": raw} {
		p := pools[mode]
		if err := h.expect(ctx, &row, mode+" pool", p.App, int64(p.Size-m.WarmupDone-m.Done)); err != nil {
			return row, err
		}
	}
	return row, nil
}
