/** The SMTP capture's HTTP port in `npm run dev` (its SMTP port is SMTP_PORT's dev default, 2525). */
export const DEV_SMTP_CAPTURE_HTTP_PORT = 8025;
