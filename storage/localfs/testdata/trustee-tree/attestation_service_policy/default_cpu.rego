package policy

default allow = false
