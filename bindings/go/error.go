package wirecore

import (
	"context"
	"errors"
)

// Error is a failure from the engine. Code is the stable core error code ("timeout.connect");
// Message is for people and may change. Match with errors.Is against the sentinels
// (errors.Is(err, wirecore.ErrTimeoutConnect)) or errors.As into *Error.
type Error struct {
	// Code is the core ErrorKind code.
	Code string
	// Message describes the failure, with its causes.
	Message string
	// cause is the context error when a context ended the request.
	cause error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "wirecore: " + e.Code
	}
	return "wirecore: " + e.Message + " (" + e.Code + ")"
}

// Is matches the sentinel of e's code.
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	return ok && s.code == e.Code
}

// Unwrap returns the context error (context.Canceled or context.DeadlineExceeded) when a
// context ended the request.
func (e *Error) Unwrap() error { return e.cause }

// Timeout reports whether the error is a timeout (net.Error).
func (e *Error) Timeout() bool {
	switch e.Code {
	case "timeout.total", "timeout.connect", "timeout.tls", "timeout.read", "timeout.pool":
		return true
	}
	return false
}

// Temporary reports whether retrying later may succeed (net.Error; deprecated there).
func (e *Error) Temporary() bool {
	switch e.Code {
	case "circuit_open", "rate_limited", "overloaded", "timeout.pool":
		return true
	}
	return e.Timeout()
}

// sentinel is the value behind each Err* variable: errors.Is(err, ErrDNS) matches every
// *Error whose Code is "dns".
type sentinel struct{ code string }

func (s *sentinel) Error() string { return "wirecore: " + s.code }

// Sentinels, one per core error code. Use with errors.Is.
var (
	ErrInvalidConfig    error = &sentinel{"invalid_config"}
	ErrInvalidURL       error = &sentinel{"invalid_url"}
	ErrInvalidHeader    error = &sentinel{"invalid_header"}
	ErrInvalidRequest   error = &sentinel{"invalid_request"}
	ErrDNS              error = &sentinel{"dns"}
	ErrConnect          error = &sentinel{"connect"}
	ErrTLS              error = &sentinel{"tls"}
	ErrIO               error = &sentinel{"io"}
	ErrProtocol         error = &sentinel{"protocol"}
	ErrTimeoutTotal     error = &sentinel{"timeout.total"}
	ErrTimeoutConnect   error = &sentinel{"timeout.connect"}
	ErrTimeoutTLS       error = &sentinel{"timeout.tls"}
	ErrTimeoutRead      error = &sentinel{"timeout.read"}
	ErrTimeoutPool      error = &sentinel{"timeout.pool"}
	ErrDecode           error = &sentinel{"decode"}
	ErrBodyTooLarge     error = &sentinel{"body_too_large"}
	ErrTooManyRedirects error = &sentinel{"too_many_redirects"}
	ErrClosed           error = &sentinel{"closed"}
	ErrCancelled        error = &sentinel{"cancelled"}
	ErrCircuitOpen      error = &sentinel{"circuit_open"}
	ErrRateLimited      error = &sentinel{"rate_limited"}
	ErrOverloaded       error = &sentinel{"overloaded"}
	// ErrRedirectDowngrade is an https → http redirect refused by Redirect.AllowDowngrade.
	ErrRedirectDowngrade error = &sentinel{"redirect_downgrade"}
	ErrInternal          error = &sentinel{"internal"}
	// ErrInvalidArgument is misuse of the C ABI; the Go API never causes it.
	ErrInvalidArgument error = &sentinel{"invalid_argument"}
)

var sentinels = []error{
	ErrInvalidConfig, ErrInvalidURL, ErrInvalidHeader, ErrInvalidRequest, ErrDNS, ErrConnect,
	ErrTLS, ErrIO, ErrProtocol, ErrTimeoutTotal, ErrTimeoutConnect, ErrTimeoutTLS, ErrTimeoutRead,
	ErrTimeoutPool, ErrDecode, ErrBodyTooLarge, ErrTooManyRedirects, ErrClosed, ErrCancelled,
	ErrCircuitOpen, ErrRateLimited, ErrOverloaded, ErrRedirectDowngrade, ErrInternal,
	ErrInvalidArgument,
}

// Sentinel returns the sentinel for a code, or nil for an unknown code.
func Sentinel(code string) error {
	for _, s := range sentinels {
		if s.(*sentinel).code == code {
			return s
		}
	}
	return nil
}

// fromContext is the error for a request ended by its context: a deadline is timeout.total,
// a cancellation is cancelled; both unwrap to the context's error.
func fromContext(ctx context.Context) *Error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: "timeout.total", Message: "the context deadline passed", cause: err}
	}
	return &Error{Code: "cancelled", Message: "the context was cancelled", cause: err}
}
