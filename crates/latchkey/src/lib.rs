//! User authentication for apps that speak the App Services client API.
