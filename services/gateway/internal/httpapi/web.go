package httpapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"

	"polyshop/shared/httpx"
)

// webFiles is the web UI: plain HTML, CSS and JavaScript modules, no build step. It uses
// only the public API under /api (openapi.yaml), exactly as any other client does.
//
//go:embed web
var webFiles embed.FS

// registerWeb serves the web UI: "/" is the single page (its views are addressed by the
// URL fragment, #/search, #/orders/<id>, …, so the server needs no route per view) and
// /ui/... its assets. Assets are revalidated on every load (ETag of their content), so a
// new gateway build is picked up at once.
func (a *API) registerWeb(mux *http.ServeMux) {
	mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, "index.html")
	}))
	mux.Handle("GET /ui/{file...}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, r.PathValue("file"))
	}))
}

type asset struct {
	body        []byte
	etag, ctype string
}

var (
	assetsOnce sync.Once
	assets     map[string]asset
)

func loadAssets() {
	assets = map[string]asset{}
	sub, _ := fs.Sub(webFiles, "web")
	_ = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[p] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ct}
		return nil
	})
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	assetsOnce.Do(loadAssets)
	a, ok := assets[path.Clean(name)]
	if !ok || strings.Contains(name, "..") {
		httpx.WriteProblem(w, r, httpx.NotFound("No such page or file."), nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if name == "index.html" {
		// The UI builds its DOM from API data with textContent only; this policy makes sure
		// nothing else runs.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("Referrer-Policy", "no-referrer")
	}
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}
