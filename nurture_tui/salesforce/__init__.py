"""Salesforce: client factory, field mapping, pull/push sync and the loopback emulator."""
