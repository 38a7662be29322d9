"""usage_log"""
