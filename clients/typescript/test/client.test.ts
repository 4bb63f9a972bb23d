// Drives a real refreshd through the generated client: provisions, imports,
// lists, exchanges and revokes. The Go test in this folder starts the server and
// passes REFRESHD_URL and REFRESHD_API_KEY; tsc checks this file against the
// generated types before node runs it, so a contract change that breaks a
// caller breaks this test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import { createRefreshdClient } from "refreshd-client";

const baseUrl = process.env.REFRESHD_URL;
const apiKey = process.env.REFRESHD_API_KEY;
if (!baseUrl || !apiKey) {
  throw new Error("REFRESHD_URL and REFRESHD_API_KEY must name a running refreshd and a key for it");
}

test("import, list, exchange and revoke through the generated client", async () => {
  const api = createRefreshdClient(baseUrl, { apiKey });
  const anonymous = createRefreshdClient(baseUrl);
  const appId = randomUUID();
  const userId = randomUUID();
  const [one, two] = [`ts-one-${randomUUID()}`, `ts-two-${randomUUID()}`];

  const app = await api.POST("/api/application/{applicationId}", {
    params: { path: { applicationId: appId } },
    body: { application: { name: "TypeScript client test" } },
  });
  assert.equal(app.response.status, 200);
  assert.equal(app.data?.application.id, appId);

  const user = await api.POST("/api/user/{userId}", {
    params: { path: { userId } },
    body: { user: { email: `${userId}@example.com` } },
  });
  assert.equal(user.response.status, 200);

  const now = Date.now();
  const imported = await api.POST("/api/user/refresh-token/import", {
    body: {
      refreshTokens: [
        { token: one, userId, applicationId: appId, startInstant: now },
        { token: two, userId, applicationId: appId, startInstant: now },
      ],
    },
  });
  assert.equal(imported.response.status, 200);

  const listed = await api.GET("/api/jwt/refresh", { params: { query: { userId } } });
  assert.equal(listed.response.status, 200);
  assert.equal(listed.data?.refreshTokens.length, 2);
  for (const t of listed.data?.refreshTokens ?? []) {
    assert.equal(t.userId, userId);
    assert.equal(t.applicationId, appId);
    assert.equal(t.token, undefined, "token values are never returned");
  }

  const exchanged = await anonymous.POST("/api/jwt/refresh", { body: { refreshToken: one } });
  assert.equal(exchanged.response.status, 200);
  assert.equal(exchanged.data?.refreshToken, one);
  assert.equal(exchanged.data?.token.split(".").length, 3, "a JWT");
  const idOfOne = exchanged.data?.refreshTokenId;

  const byValue = await api.DELETE("/api/jwt/refresh", { params: { query: { token: two } } });
  assert.equal(byValue.response.status, 200);
  const again = await api.DELETE("/api/jwt/refresh", { body: { token: two } });
  assert.equal(again.response.status, 404, "an already revoked token is not found");

  const left = await api.GET("/api/jwt/refresh", { params: { query: { userId } } });
  assert.deepEqual(left.data?.refreshTokens.map((t) => t.id), [idOfOne]);

  const byUser = await api.DELETE("/api/jwt/refresh", {
    body: { userId, eventInfo: { deviceName: "TypeScript client test" } },
  });
  assert.equal(byUser.response.status, 200);

  const refused = await anonymous.POST("/api/jwt/refresh", { body: { refreshToken: one } });
  assert.equal(refused.response.status, 400);
  assert.deepEqual(refused.error?.fieldErrors?.["refreshToken"]?.map((e) => e.code), ["[invalid]refreshToken"]);

  const empty = await api.GET("/api/jwt/refresh", { params: { query: { userId } } });
  assert.deepEqual(empty.data?.refreshTokens, []);

  const malformed = await api.GET("/api/jwt/refresh", { params: { query: { userId: "not-a-uuid" } } });
  assert.equal(malformed.response.status, 400);
  assert.deepEqual(malformed.error?.fieldErrors?.["userId"]?.map((e) => e.code), ["[couldNotConvert]userId"]);

  await api.DELETE("/api/user/{userId}", { params: { path: { userId }, query: { hardDelete: true } } });
  await api.DELETE("/api/application/{applicationId}", { params: { path: { applicationId: appId }, query: { hardDelete: true } } });
});
