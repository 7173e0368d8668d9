"""Provisioning an appliance on site: identity, device key, LAN TLS certificate, first
administrator, enrolment at the centre, self-test and the printed setup sheet."""
