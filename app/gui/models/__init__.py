"""The model dialogs: download with the quant picker, and converting old MoE files."""
