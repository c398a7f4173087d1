package esindex

import "context"

// SetBeforeWrite installs a hook that runs between the read and the write of every Apply
// round, so a test can write the same documents in between.
func SetBeforeWrite(x *Index, f func()) { x.beforeWrite = f }

// Do sends a raw request (tests set up states this package does not create, such as an
// index made by an older version of the service).
func Do(ctx context.Context, x *Index, method, path string, body any) error {
	_, err := x.do(ctx, method, path, body, nil)
	return err
}

// GetJSON sends a GET and decodes the answer into out.
func GetJSON(ctx context.Context, x *Index, path string, out any) error {
	_, err := x.do(ctx, "GET", path, nil, out)
	return err
}
