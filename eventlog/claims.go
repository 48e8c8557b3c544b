package eventlog

import (
	"encoding/base64"
	"encoding/hex"
)

// Claims returns Trustee's "uefi_event_logs" claim value: one object per
// event with "index" (CC MR index), "type_name", "digests"
// ([{"alg","digest"(hex)}]), "event" (standard base64 of the event data),
// "details" and "digest_matches_event". Values are JSON-friendly (strings,
// bools, float64, json.Number, []any, map[string]any); every call builds a
// fresh value.
func (l *Log) Claims() []any {
	out := make([]any, len(l.events))
	for i, ev := range l.events {
		ds := make([]any, len(ev.Digests))
		for j, d := range ev.Digests {
			ds[j] = map[string]any{
				"alg":    d.Alg.String(),
				"digest": hex.EncodeToString(d.Digest),
			}
		}
		out[i] = map[string]any{
			"index":                float64(ev.MRIndex),
			"type_name":            ev.TypeName,
			"digests":              ds,
			"event":                base64.StdEncoding.EncodeToString(ev.Data),
			"details":              ev.Details.claims(),
			"digest_matches_event": ev.DigestMatchesEvent,
		}
	}
	return out
}
