package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is an error of the REST API, with Confluent's error code. The HTTP
// status is the code's first three digits (or the code itself when it has
// three digits). Clients of this package receive it from the Client and
// serde functions; match it with errors.AsType[*Error].
type Error struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("serde/registry: error %d: %s", e.Code, e.Message)
}

// Status returns the HTTP status of the error code.
func (e *Error) Status() int {
	c := e.Code
	for c >= 1000 {
		c /= 10
	}
	return c
}

// Confluent's error codes.
const (
	CodeSubjectNotFound             = 40401
	CodeVersionNotFound             = 40402
	CodeSchemaNotFound              = 40403
	CodeSubjectSoftDeleted          = 40404
	CodeSubjectNotSoftDeleted       = 40405
	CodeVersionSoftDeleted          = 40406
	CodeVersionNotSoftDeleted       = 40407
	CodeSubjectLevelCompatNotConfig = 40408
	CodeSubjectLevelModeNotConfig   = 40409
	CodeIncompatibleSchema          = 409
	CodeInvalidSchema               = 42201
	CodeInvalidVersion              = 42202
	CodeInvalidCompatibilityLevel   = 42203
	CodeInvalidMode                 = 42204
	CodeOperationNotPermitted       = 42205
	CodeReferenceExists             = 42206
	CodeStoreError                  = 50001
	CodeOperationTimeout            = 50002
	CodeForwardingError             = 50003
	codeNotFound                    = 404
	codeBadRequest                  = 400
	codeUnsupportedMediaType        = 415
)

func apiErr(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// contentType is what the registry answers with.
const contentType = "application/vnd.schemaregistry.v1+json"

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeErr(w, apiErr(50001, "encode response: %v", err))
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, err error) {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		e = apiErr(CodeStoreError, "%v", err)
	}
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(e.Status())
	_, _ = w.Write(b)
}
