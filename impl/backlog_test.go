package impl_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/FusionAuth/go-client/pkg/fusionauth"
	"github.com/google/uuid"
)

// TestRevokeEventsCarryUser: each revoke event that names a user carries the user
// as GET /api/user returns it and linkedObjectId, and decodes into the Go
// client's JWTRefreshTokenRevokeEvent with every field of the right type.
func TestRevokeEventsCarryUser(t *testing.T) {
	s := newServer(t)
	user, other, app := uuid.New(), uuid.New(), uuid.New()
	s.expect(req{method: "POST", path: "/api/user/" + user.String(), body: map[string]any{"user": map[string]any{
		"email": "dinesh@example.com", "username": "dinesh", "firstName": "Dinesh", "lastName": "Chugtai",
		"password": "never-stored", "data": map[string]any{"plan": "pro", "seats": 3, "manager": nil}}}}, 200)
	s.createUser(other)
	s.createApp(app)
	start := nowMillis() - 1000
	for _, tok := range []struct {
		value string
		user  uuid.UUID
	}{{"u-1", user}, {"u-2", user}, {"u-3", user}, {"o-1", other}} {
		s.importToken(tok.user, app, tok.value, start)
	}
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=u-1"}, 200)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + user.String() + "&applicationId=" + app.String()}, 200)
	s.importToken(user, app, "u-4", start)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + user.String()}, 200)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + app.String()}, 200)

	var asGET struct {
		User map[string]any `json:"user"`
	}
	if err := json.Unmarshal(s.expect(req{method: "GET", path: "/api/user/" + user.String()}, 200).Body, &asGET); err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	if err := s.Store.DB().Select(&bodies, `SELECT body FROM events WHERE type = 'jwt.refresh-token.revoke' ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 4 {
		t.Fatalf("revoke events: %d, want 4", len(bodies))
	}
	for i, body := range bodies {
		var generic map[string]any
		if err := json.Unmarshal(body, &generic); err != nil {
			t.Fatal(err)
		}
		var typed fusionauth.JWTRefreshTokenRevokeEvent
		if err := json.Unmarshal(body, &typed); err != nil {
			t.Fatalf("event %d does not decode into the Go client's JWTRefreshTokenRevokeEvent: %v\n%s", i, err, body)
		}
		if typed.Type != fusionauth.EventType_JWTRefreshTokenRevoke || typed.ApplicationTimeToLiveInSeconds[app.String()] != 3600 ||
			typed.Info.IpAddress != "127.0.0.1" {
			t.Errorf("event %d: %+v", i, typed)
		}
		if i == 3 { // by application: no user
			if _, ok := generic["user"]; ok || generic["linkedObjectId"] != nil {
				t.Errorf("application event names a user: %s", body)
			}
			continue
		}
		if !reflect.DeepEqual(generic["user"], asGET.User) {
			t.Errorf("event %d user:\ngot  %v\nwant %v (GET /api/user)", i, generic["user"], asGET.User)
		}
		if generic["linkedObjectId"] != user.String() || typed.User.Email != "dinesh@example.com" || typed.User.Data["plan"] != "pro" ||
			typed.User.Password != "" || typed.UserId != user.String() {
			t.Errorf("event %d: linkedObjectId %v, user %+v", i, generic["linkedObjectId"], typed.User)
		}
	}
	var single fusionauth.JWTRefreshTokenRevokeEvent
	_ = json.Unmarshal(bodies[0], &single)
	if single.RefreshToken.Id == "" || single.RefreshToken.UserId != user.String() || single.RefreshToken.Token != "" {
		t.Errorf("single-token event's refreshToken: %+v", single.RefreshToken)
	}
}

type deliveryStatus struct {
	PendingCount         int64   `json:"pendingCount"`
	OldestPendingInstant *int64  `json:"oldestPendingInstant"`
	NextAttemptInstant   *int64  `json:"nextAttemptInstant"`
	FailedAttempts       int32   `json:"failedAttempts"`
	LastError            *string `json:"lastError"`
}

func (s *testServer) deliveryStatus(id string) deliveryStatus {
	s.t.Helper()
	var out struct {
		Webhook struct {
			DeliveryStatus *deliveryStatus `json:"deliveryStatus"`
		} `json:"webhook"`
	}
	if err := json.Unmarshal(s.expect(req{method: "GET", path: "/api/webhook/" + id}, 200).Body, &out); err != nil || out.Webhook.DeliveryStatus == nil {
		s.t.Fatalf("GET /api/webhook/%s: no deliveryStatus (%v)", id, err)
	}
	return *out.Webhook.DeliveryStatus
}

// TestWebhookBacklog: a receiver that keeps failing shows as a backlog on the
// webhook; dropping its oldest event on purpose unblocks the rest, is recorded as
// an event, and that event reaches the receiver after the others.
func TestWebhookBacklog(t *testing.T) {
	s := newServer(t)
	rcv := newReceiver(t, "backlog-signing-secret")
	rcv.failNext = 1 << 30
	id := s.registerWebhook(rcv.srv.URL, rcv.secret, "jwt.refresh-token.revoke", "webhook.backlog.drop")
	w := s.seed(1, 3, 1)
	for _, app := range w.apps {
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + app.String()}, 200)
	}
	var revokes []struct {
		ID            string `db:"id"`
		CreateInstant int64  `db:"create_instant"`
	}
	if err := s.Store.DB().Select(&revokes, `SELECT id, create_instant FROM events ORDER BY seq`); err != nil || len(revokes) != 3 {
		t.Fatalf("events: %v %v", revokes, err)
	}
	if st := s.deliveryStatus(id); st.PendingCount != 3 || st.FailedAttempts != 0 || st.LastError != nil ||
		*st.OldestPendingInstant != revokes[0].CreateInstant {
		t.Fatalf("before any attempt: %+v", st)
	}
	startDispatcher(t, s)
	deadline := time.Now().Add(20 * time.Second)
	var st deliveryStatus
	for st = s.deliveryStatus(id); st.FailedAttempts < 2; st = s.deliveryStatus(id) {
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempts shown: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.PendingCount != 3 || st.LastError == nil || *st.LastError != "receiver answered 503" || st.NextAttemptInstant == nil ||
		*st.OldestPendingInstant != revokes[0].CreateInstant {
		t.Fatalf("stuck webhook: %+v", st)
	}
	var list struct {
		Webhooks []struct {
			ID             string          `json:"id"`
			DeliveryStatus *deliveryStatus `json:"deliveryStatus"`
		} `json:"webhooks"`
	}
	_ = json.Unmarshal(s.expect(req{method: "GET", path: "/api/webhook"}, 200).Body, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].DeliveryStatus == nil || list.Webhooks[0].DeliveryStatus.PendingCount != 3 {
		t.Fatalf("list: %+v", list)
	}
	backlogs, err := s.Store.Backlogs(context.Background(), nil) // what a metrics collector reads
	if err != nil || len(backlogs) != 1 || backlogs[0].Pending != 3 || backlogs[0].WebhookID.String() != id {
		t.Fatalf("Backlogs: %+v %v", backlogs, err)
	}

	locked, _ := s.newKey(map[string]any{"tenantId": s.defaultTenant()})
	s.expect(req{method: "DELETE", path: "/api/webhook/" + id + "/backlog", header: map[string]string{"Authorization": locked}}, 401)
	s.expect(req{method: "DELETE", path: "/api/webhook/" + uuid.NewString() + "/backlog"}, 404)
	s.expect(req{method: "DELETE", path: "/api/webhook/" + id + "/backlog?limit=0"}, 400, "limit:[couldNotConvert]limit")
	var dropped struct {
		DroppedCount int64  `json:"droppedCount"`
		EventID      string `json:"eventId"`
	}
	_ = json.Unmarshal(s.expect(req{method: "DELETE", path: "/api/webhook/" + id + "/backlog?limit=1"}, 200).Body, &dropped)
	if dropped.DroppedCount != 1 || dropped.EventID == "" {
		t.Fatalf("drop: %+v", dropped)
	}
	var events struct{ Events []map[string]any }
	_ = json.Unmarshal(s.expect(req{method: "GET", path: "/api/event?type=webhook.backlog.drop"}, 200).Body, &events)
	if len(events.Events) != 1 {
		t.Fatalf("drop events: %v", events.Events)
	}
	expectFields(t, events.Events[0], map[string]any{"id": dropped.EventID, "webhookId": id, "droppedCount": 1.0,
		"firstEventId": revokes[0].ID, "lastEventId": revokes[0].ID, "firstEventCreateInstant": float64(revokes[0].CreateInstant),
		"tenantId": s.defaultTenant()})
	if events.Events[0]["info"].(map[string]any)["ipAddress"] != "127.0.0.1" {
		t.Errorf("drop event info: %v", events.Events[0]["info"])
	}

	rcv.mu.Lock()
	rcv.failNext = 0
	rcv.mu.Unlock()
	got := rcv.waitFor(3)
	if got[0]["id"] != revokes[1].ID || got[1]["id"] != revokes[2].ID || got[2]["id"] != dropped.EventID {
		t.Fatalf("after the drop: %v, want the two later revocations, then the drop", got)
	}
	for st = s.deliveryStatus(id); st.PendingCount != 0; st = s.deliveryStatus(id) {
		if time.Now().After(deadline) {
			t.Fatalf("backlog not drained: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.OldestPendingInstant != nil || st.LastError != nil || st.NextAttemptInstant != nil {
		t.Fatalf("drained webhook: %+v", st)
	}
	dropped.EventID = ""
	_ = json.Unmarshal(s.expect(req{method: "DELETE", path: "/api/webhook/" + id + "/backlog"}, 200).Body, &dropped)
	if dropped.DroppedCount != 0 || dropped.EventID != "" {
		t.Fatalf("dropping nothing: %+v", dropped)
	}
	var n int
	if err := s.Store.DB().Get(&n, `SELECT count(*) FROM events WHERE type = 'webhook.backlog.drop'`); err != nil || n != 1 {
		t.Fatalf("drop events after dropping nothing: %d %v, want 1", n, err)
	}
}
