package eventlog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Details is the decoded event data of one event, with the fields Trustee
// emits under "details". Absent fields are nil.
type Details struct {
	// String is "string": a description (EV_EVENT_TAG, EV_IPL, EV_EFI_ACTION,
	// EV_POST_CODE, EV_PLATFORM_CONFIG_FLAGS, firmware blob and handoff
	// table descriptions).
	String *string
	// Variable holds the EFI variable fields of EV_EFI_VARIABLE_* events.
	Variable *EFIVariable
	// DevicePaths is "device_paths": the UEFI device path of an
	// EV_EFI_BOOT_SERVICES_APPLICATION, one text node per element.
	DevicePaths []string
	// AAEL is set for EV_EVENT_TAG events tagged "AAEL" (attestation-agent
	// event log entries); they report "unicode_name": "AAEL" and "data".
	AAEL *AAELEntry
}

// EFIVariable is a UEFI_VARIABLE_DATA structure.
type EFIVariable struct {
	// VariableName is the vendor GUID as raw bytes; Trustee prints it as
	// hex of the bytes in stored order ("61dfe48b-ca93-d211-…").
	VariableName [16]byte
	UnicodeName  string
	// UnicodeNameLength is the declared name length in UTF-16 code units.
	UnicodeNameLength uint64
	VariableData      []byte
	// VariableDataLength is the declared data length in bytes.
	VariableDataLength uint64
}

// AAELEntry is an attestation-agent event log entry: "domain operation
// content", the content decoded as JSON when it is valid JSON.
type AAELEntry struct {
	Domain    string
	Operation string
	// Content is a JSON value (map[string]any, []any, string, json.Number,
	// bool or nil) when the content text is valid JSON, otherwise the text.
	Content any

	text string // content as logged
}

// aaelTaggedEventID is the taggedEventID of AAEL entries: the bytes "LEAA"
// read as a little-endian uint32 (ASCII "AAEL" big-endian).
const aaelTaggedEventID = 0x4141454C

var errDetails = errors.New("eventlog: cannot decode event data")

func detailsErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errDetails, fmt.Sprintf(format, args...))
}

func strPtr(s string) *string { return &s }

// decodeDetails decodes event data per event type, like Trustee's parsers.
func decodeDetails(typ uint32, data []byte) (Details, error) {
	switch typ {
	case EvPostCode, EvAction, EvCompactHash, EvOmitBootDeviceEvents, EvEFIAction:
		if !utf8.Valid(data) {
			return Details{}, detailsErr("event data is not UTF-8")
		}
		return Details{String: strPtr(string(data))}, nil
	case EvEventTag:
		return decodeEventTag(data)
	case EvPlatformConfigFlags:
		return Details{String: strPtr(platformConfigString(data))}, nil
	case EvIPL:
		return decodeIPL(data)
	case EvEFIVariableDriverConfig, EvEFIVariableBoot, EvEFIVariableBoot2, EvEFIVariableAuthority:
		v, err := decodeEFIVariable(data)
		if err != nil {
			return Details{}, err
		}
		return Details{Variable: v}, nil
	case EvEFIBootServicesApplication:
		return decodeImageLoad(data)
	case EvEFIPlatformFirmwareBlob2, EvEFIHandoffTables2:
		return decodeCountedString(data)
	}
	return Details{}, nil
}

// decodeCountedString decodes UEFI_PLATFORM_FIRMWARE_BLOB2 /
// UEFI_HANDOFF_TABLE_POINTERS2 descriptions: a size byte followed by the
// description, whose last byte (the terminator) Trustee drops.
func decodeCountedString(data []byte) (Details, error) {
	if len(data) == 0 {
		return Details{}, detailsErr("empty description")
	}
	n := int(data[0])
	if n == 0 {
		return Details{}, detailsErr("zero description size")
	}
	if len(data) < n {
		return Details{}, detailsErr("description of %d bytes exceeds %d bytes of data", n, len(data))
	}
	desc := data[1:n]
	if !utf8.Valid(desc) {
		return Details{}, detailsErr("description is not UTF-8")
	}
	return Details{String: strPtr(string(desc))}, nil
}

// decodeEventTag decodes TCG_PCClientTaggedEvent.
func decodeEventTag(data []byte) (Details, error) {
	if len(data) < 8 {
		return Details{}, detailsErr("tagged event shorter than 8 bytes")
	}
	id := binary.LittleEndian.Uint32(data)
	n := binary.LittleEndian.Uint32(data[4:])
	if uint64(n) > uint64(len(data)-8) {
		return Details{}, detailsErr("tagged event data of %d bytes exceeds the event", n)
	}
	raw := data[8 : 8+int(n)]
	if !utf8.Valid(raw) {
		return Details{}, detailsErr("tagged event data is not UTF-8")
	}
	s := strings.ReplaceAll(string(raw), "\x00", "")
	d := Details{String: strPtr(s)}
	if id == aaelTaggedEventID {
		e, err := parseAAEL(s)
		if err != nil {
			return Details{}, err
		}
		d.AAEL = e
	}
	return d, nil
}

// parseAAEL splits an AAEL entry "domain operation content" at its first two
// spaces; the content may itself contain spaces.
func parseAAEL(s string) (*AAELEntry, error) {
	domain, rest, ok1 := strings.Cut(s, " ")
	operation, content, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return nil, detailsErr("AAEL entry %q is not \"domain operation content\"", s)
	}
	return &AAELEntry{Domain: domain, Operation: operation, Content: aaelContent(content), text: content}, nil
}

// aaelContent returns content decoded as JSON when it is one valid JSON
// value, otherwise content itself.
func aaelContent(content string) any {
	if !json.Valid([]byte(content)) {
		return content
	}
	dec := json.NewDecoder(strings.NewReader(content))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return content
	}
	return v
}

// platformConfigString mirrors Trustee's EV_PLATFORM_CONFIG_FLAGS decoding:
// non-UTF-8 data gives "", 0x10 becomes a space, control characters are
// dropped.
func platformConfigString(data []byte) string {
	if !utf8.Valid(data) {
		return ""
	}
	var b strings.Builder
	for _, c := range string(data) {
		switch {
		case c == 0x10:
			b.WriteByte(' ')
		case unicode.IsControl(c):
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// decodeIPL decodes EV_IPL: GRUB/shim write NUL-terminated UTF-8; Google's
// firmware writes UTF-16LE prefixed with "." (0x2e 0x00) and terminated.
func decodeIPL(data []byte) (Details, error) {
	if len(data) < 2 {
		return Details{}, detailsErr("IPL event shorter than 2 bytes")
	}
	if data[0] == 0x2e && data[1] == 0x00 {
		n := len(data) - 2
		if n == 0 || n%2 != 0 {
			return Details{}, detailsErr("IPL event is not a UTF-16 string")
		}
		return Details{String: strPtr(utf16String(data[2 : len(data)-2]))}, nil
	}
	// The string ends at the first NUL; GRUB leaves a stray byte after it.
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	if !utf8.Valid(data) {
		return Details{}, detailsErr("IPL event is not UTF-8")
	}
	return Details{String: strPtr(string(data))}, nil
}

// utf16String decodes UTF-16LE, replacing unpaired surrogates with U+FFFD.
func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// utf16Strict decodes UTF-16LE and fails on unpaired surrogates.
func utf16Strict(b []byte) (string, bool) {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for i := 0; i < len(u); i++ {
		switch {
		case u[i] >= 0xD800 && u[i] < 0xDC00:
			if i+1 >= len(u) || u[i+1] < 0xDC00 || u[i+1] >= 0xE000 {
				return "", false
			}
			i++
		case u[i] >= 0xDC00 && u[i] < 0xE000:
			return "", false
		}
	}
	return string(utf16.Decode(u)), true
}

// decodeEFIVariable decodes UEFI_VARIABLE_DATA.
func decodeEFIVariable(data []byte) (*EFIVariable, error) {
	if len(data) < 32 {
		return nil, detailsErr("EFI variable event shorter than 32 bytes")
	}
	v := &EFIVariable{}
	copy(v.VariableName[:], data[:16])
	v.UnicodeNameLength = binary.LittleEndian.Uint64(data[16:])
	v.VariableDataLength = binary.LittleEndian.Uint64(data[24:])
	rest := data[32:]
	if v.UnicodeNameLength > uint64(len(rest))/2 {
		return nil, detailsErr("EFI variable name of %d characters exceeds the event", v.UnicodeNameLength)
	}
	nameLen := int(v.UnicodeNameLength) * 2
	name, ok := utf16Strict(rest[:nameLen])
	if !ok {
		return nil, detailsErr("EFI variable name is not valid UTF-16")
	}
	v.UnicodeName = name
	rest = rest[nameLen:]
	if v.VariableDataLength > uint64(len(rest)) {
		return nil, detailsErr("EFI variable data of %d bytes exceeds the event", v.VariableDataLength)
	}
	v.VariableData = rest[:v.VariableDataLength]
	return v, nil
}

// decodeImageLoad decodes UEFI_IMAGE_LOAD_EVENT's device path.
func decodeImageLoad(data []byte) (Details, error) {
	if len(data) < 32 {
		return Details{}, detailsErr("image load event shorter than 32 bytes")
	}
	n := binary.LittleEndian.Uint64(data[24:])
	if n == 0 {
		return Details{}, nil
	}
	rest := data[32:]
	// Trustee drops the last 4 bytes of the declared device path (the end
	// node) and prints every node before it.
	if n < 4 || n-4 > uint64(len(rest)) {
		return Details{}, detailsErr("device path of %d bytes does not fit the event", n)
	}
	path := rest[:n-4]
	if len(path) < 4 {
		return Details{}, detailsErr("device path shorter than one node")
	}
	var nodes []string
	for len(path) > 0 {
		if len(path) < 4 {
			return Details{}, detailsErr("truncated device path node")
		}
		l := int(binary.LittleEndian.Uint16(path[2:]))
		if l < 4 || l > len(path) {
			return Details{}, detailsErr("device path node length %d out of range", l)
		}
		nodes = append(nodes, devicePathNode(path[0], path[1], path[4:l]))
		path = path[l:]
	}
	return Details{DevicePaths: nodes}, nil
}

// rawGUID prints a GUID's bytes in stored order, as Trustee does for EFI
// variable names.
func rawGUID(g []byte) string {
	h := hex.EncodeToString(g)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// uefiGUID prints a GUID in the UEFI text form (first three fields
// little-endian), upper case.
func uefiGUID(g []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]), binary.LittleEndian.Uint16(g[6:]),
		g[8:10], g[10:16])
}

// claims returns the JSON-friendly "details" object.
func (d Details) claims() map[string]any {
	m := map[string]any{}
	if d.String != nil {
		m["string"] = *d.String
	}
	if v := d.Variable; v != nil {
		m["unicode_name"] = v.UnicodeName
		m["unicode_name_length"] = float64(v.UnicodeNameLength)
		m["variable_data"] = base64.StdEncoding.EncodeToString(v.VariableData)
		m["variable_data_length"] = float64(v.VariableDataLength)
		m["variable_name"] = rawGUID(v.VariableName[:])
	}
	if d.DevicePaths != nil {
		p := make([]any, len(d.DevicePaths))
		for i, s := range d.DevicePaths {
			p[i] = s
		}
		m["device_paths"] = p
	}
	if a := d.AAEL; a != nil {
		m["unicode_name"] = "AAEL"
		m["data"] = map[string]any{
			"domain":    a.Domain,
			"operation": a.Operation,
			"content":   aaelContent(a.text), // a fresh value per call
		}
	}
	return m
}
