package impl

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"refreshd/impl/store"
)

// Headers of each webhook delivery.
const (
	SignatureHeader = "X-Refreshd-Signature" // "sha256=" + hex HMAC-SHA256 of the body, with a signing secret
	EventIDHeader   = "X-Refreshd-Event-Id"
	// SignatureJWTHeader is FusionAuth's webhook signature, with a signing key: a
	// JWT whose only claim, request_body_sha256, is the padded standard base64 of
	// the SHA-256 of the body.
	SignatureJWTHeader = "X-FusionAuth-Signature-JWT"
)

// DispatcherConfig tunes event delivery; zero values take the defaults.
type DispatcherConfig struct {
	Logger       *slog.Logger
	Workers      int           // webhooks served at once by this process (4)
	PollInterval time.Duration // how often to look for due work when idle (500 ms)
	BaseBackoff  time.Duration // delay after the first failure, doubled each time (1 s)
	MaxBackoff   time.Duration // longest delay between attempts (1 h)
	Batch        int           // deliveries per lease (50)
	Retention    time.Duration // how long delivered events are kept (30 days)
	Metrics      *Metrics      // counts deliveries and pruned events; nil counts nothing
	Issuer       string        // iss of the Security Event Tokens of Shared Signals streams ("refreshd")
}

func (c *DispatcherConfig) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Hour
	}
	if c.Batch <= 0 {
		c.Batch = 50
	}
	if c.Retention <= 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.Issuer == "" {
		c.Issuer = "refreshd"
	}
}

// RunDispatcher delivers recorded events to webhooks until ctx ends. Events come
// from the outbox tables, so nothing is lost across restarts: undelivered events
// are simply found again. Any number of dispatchers, in any number of processes,
// may run at once: each webhook is leased to one of them at a time, which also
// keeps its events in order. Delivery is at least once; receivers deduplicate by
// event id. A failing receiver is retried with exponential backoff, forever
// (until the webhook is deleted), and holds back only its own later events.
func RunDispatcher(ctx context.Context, st *store.Store, cfg DispatcherConfig) {
	cfg.defaults()
	d := &dispatcher{store: st, keys: newKeyring(st), cfg: cfg, issuer: cfg.Issuer, owner: uuid.New(),
		clients: map[uuid.UUID]*webhookClient{}, outage: &outageLog{log: cfg.Logger, name: "dispatcher"}}
	var wg sync.WaitGroup
	for i := 0; i < cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.prune(ctx)
	}()
	wg.Wait()
}

type dispatcher struct {
	store  *store.Store
	keys   *keyring
	cfg    DispatcherConfig
	issuer string
	owner  uuid.UUID

	mu      sync.Mutex
	clients map[uuid.UUID]*webhookClient

	outage *outageLog // shared by the workers and the pruner
}

// warn logs a failed database call, except one cut short by shutdown or one more
// failure of an outage already logged.
func (d *dispatcher) warn(ctx context.Context, msg string, err error, args ...any) {
	if ctx.Err() != nil || d.outage.failed(err) {
		return
	}
	d.cfg.Logger.Warn(msg, append(args, "error", err)...)
}

type webhookClient struct {
	connect, read int32
	client        *http.Client
}

func (d *dispatcher) work(ctx context.Context) {
	for ctx.Err() == nil {
		claimedAt := store.NowMillis()
		w, ok, err := d.store.ClaimWebhook(ctx, d.owner, claimedAt, leaseMs(store.Webhook{}))
		if err != nil {
			d.warn(ctx, "dispatcher: claim", err)
		} else {
			d.outage.succeeded()
		}
		delivered := 0
		if ok {
			delivered = d.deliverAll(ctx, w, claimedAt+leaseMs(store.Webhook{}))
			// Release with a fresh context: the lease must not outlive a shutdown.
			releaseCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := d.store.ReleaseLease(releaseCtx, w.ID, d.owner); err != nil {
				d.warn(releaseCtx, "dispatcher: release lease", err, "webhook", w.ID)
			}
			cancel()
		}
		if delivered == 0 { // idle, or a failure: do not spin
			select {
			case <-ctx.Done():
				return
			case <-time.After(d.cfg.PollInterval):
			}
		}
	}
}

// leaseMs is long enough for one delivery attempt with some slack. A lease is
// renewed before a delivery that might not finish within what is left of it.
func leaseMs(w store.Webhook) int64 {
	return int64(w.ConnectTimeoutMs) + int64(w.ReadTimeoutMs) + 30_000
}

// deliverAll sends a webhook's due events in order, stops at the first failure,
// and says how many it delivered.
func (d *dispatcher) deliverAll(ctx context.Context, w store.Webhook, leaseUntil int64) (delivered int) {
	pending, err := d.store.PendingDeliveries(ctx, w.ID, d.cfg.Batch)
	if err != nil {
		d.warn(ctx, "dispatcher: pending deliveries", err, "webhook", w.ID)
		return 0
	}
	for _, p := range pending {
		now := store.NowMillis()
		if p.NextAttemptAt > now {
			return delivered // the oldest event waits for its retry; the later ones wait behind it
		}
		if attempt := int64(w.ConnectTimeoutMs) + int64(w.ReadTimeoutMs); leaseUntil-now < attempt+10_000 {
			mine, err := d.store.ExtendLease(ctx, w.ID, d.owner, now, leaseMs(w))
			if err != nil {
				d.warn(ctx, "dispatcher: extend lease", err, "webhook", w.ID)
			}
			if err != nil || !mine {
				return delivered
			}
			leaseUntil = now + leaseMs(w)
		}
		if err := d.send(ctx, w, p); err != nil {
			if ctx.Err() != nil {
				return delivered
			}
			d.cfg.Metrics.delivery(w.ID, false)
			delay := d.backoff(p.Attempts)
			d.cfg.Logger.Info("dispatcher: delivery failed", "webhook", w.ID, "event", p.EventID,
				"attempt", p.Attempts+1, "retry_in", delay, "error", err)
			if err := d.store.MarkFailed(ctx, w.ID, p.EventSeq, store.NowMillis()+delay.Milliseconds(), err.Error()); err != nil {
				d.warn(ctx, "dispatcher: record failure", err, "webhook", w.ID)
			}
			return delivered
		}
		d.cfg.Metrics.delivery(w.ID, true)
		if err := d.store.MarkDelivered(ctx, w.ID, p.EventSeq, store.NowMillis()); err != nil {
			d.warn(ctx, "dispatcher: record delivery", err, "webhook", w.ID)
			return delivered
		}
		delivered++
	}
	return delivered
}

func (d *dispatcher) backoff(attempts int32) time.Duration {
	delay := d.cfg.BaseBackoff
	for i := int32(0); i < attempts && delay < d.cfg.MaxBackoff; i++ {
		delay *= 2
	}
	return min(delay, d.cfg.MaxBackoff)
}

// send POSTs {"event": …}, signed and authenticated as the webhook says. Any 2xx
// is delivered.
func (d *dispatcher) send(ctx context.Context, w store.Webhook, p store.Delivery) error {
	if w.Kind == store.KindStream {
		return d.sendSET(ctx, w, p)
	}
	body := make([]byte, 0, len(p.Body)+10)
	body = append(body, `{"event":`...)
	body = append(body, p.Body...)
	body = append(body, '}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(EventIDHeader, p.EventID.String())
	if w.SigningSecret != nil {
		mac := hmac.New(sha256.New, w.SigningSecret)
		mac.Write(body)
		req.Header.Set(SignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	if w.SigningKeyID != nil {
		key, err := d.keys.masterKey(ctx, *w.SigningKeyID)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", *w.SigningKeyID, err)
		}
		sig, err := signBody(key, body)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", *w.SigningKeyID, err)
		}
		req.Header.Set(SignatureJWTHeader, sig)
	}
	if w.HTTPAuthUsername != nil {
		req.SetBasicAuth(*w.HTTPAuthUsername, deref(w.HTTPAuthPassword))
	}
	return d.post(w, req)
}

// post sends a delivery with the webhook's client; any 2xx is delivered.
func (d *dispatcher) post(w store.Webhook, req *http.Request) error {
	resp, err := d.client(w).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return nil
}

// signBody makes FusionAuth's webhook signature of body: a JWT with the key's alg
// and kid whose only claim is the body's SHA-256 in padded standard base64.
func signBody(key *signingKey, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	tok := jwt.NewWithClaims(key.method, jwt.MapClaims{"request_body_sha256": base64.StdEncoding.EncodeToString(sum[:])})
	tok.Header["kid"] = key.kid
	return tok.SignedString(key.key)
}

// client returns a keep-alive client with the webhook's timeouts.
func (d *dispatcher) client(w store.Webhook) *http.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.clients[w.ID]; c != nil && c.connect == w.ConnectTimeoutMs && c.read == w.ReadTimeoutMs {
		return c.client
	}
	connect := time.Duration(w.ConnectTimeoutMs) * time.Millisecond
	read := time.Duration(w.ReadTimeoutMs) * time.Millisecond
	c := &webhookClient{connect: w.ConnectTimeoutMs, read: w.ReadTimeoutMs, client: &http.Client{
		Timeout: connect + read,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: connect}).DialContext,
			ResponseHeaderTimeout: read,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	d.clients[w.ID] = c
	return c.client
}

// prune deletes delivered events older than the retention period, in batches.
func (d *dispatcher) prune(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		cutoff := time.Now().Add(-d.cfg.Retention).UnixMilli()
		for ctx.Err() == nil {
			n, err := d.store.PruneEvents(ctx, cutoff, 1000)
			d.cfg.Metrics.prunedEvents(n)
			if err != nil {
				d.warn(ctx, "dispatcher: prune events", err)
			}
			if err != nil || n < 1000 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
