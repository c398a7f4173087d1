package httpapi

import (
	"net/http"
	"net/url"
)

// registerActivity adds GET /api/me/activity: the signed-in user's own activity feed,
// newest first. The user comes from the token, never from the request, so nobody can read
// another user's feed; limit and cursor are forwarded as they are, and the activity
// service answers 400 (does not parse) or 422 (limit out of range) problems naming a bad one.
func (a *API) registerActivity(mux *http.ServeMux) {
	mux.Handle("GET /api/me/activity", a.requireUser(func(w http.ResponseWriter, r *http.Request, p Principal) error {
		return a.forward(w, r, a.up.Activity, "/users/"+url.PathEscape(p.UserID)+"/activity")
	}))
}
