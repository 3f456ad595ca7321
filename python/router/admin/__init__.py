"""The management API (`/v1/manage/...`) and its OpenAPI document."""
