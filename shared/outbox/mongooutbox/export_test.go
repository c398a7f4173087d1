package mongooutbox

import "go.mongodb.org/mongo-driver/bson"

// PendingFilter is the filter of the scan for documents with pending events.
func PendingFilter() bson.M { return pendingFilter() }
