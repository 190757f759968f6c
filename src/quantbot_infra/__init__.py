"""quantbot-infra: provisioning and configuration management for Quant-Bot."""

__version__ = "0.1.0"
