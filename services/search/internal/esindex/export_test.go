package esindex

// SetBeforeWrite installs a hook that runs between the read and the write of every Apply
// round, so a test can write the same documents in between.
func SetBeforeWrite(x *Index, f func()) { x.beforeWrite = f }
