"""index/lexical"""
