"""Drives the booth's operator console in a real headless Chromium (Debian `chromium` +
`chromium-driver`, through selenium): logs in, checks the live image changes, switches the mode,
triggers a rollback. Prints one JSON object with what it saw; writes screenshots into OUT.

usage: console_browser.py URL TOKEN OUT
"""

import hashlib
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

url, token, out = sys.argv[1], sys.argv[2], sys.argv[3]

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1500"):
    options.add_argument(arg)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 30)
seen = {"browser": driver.capabilities.get("browserVersion")}

# The live image as the page shows it: drawn into a canvas, hashed.
FRAME_HASH = """
const img = document.getElementById('view');
if (!img.complete || img.naturalWidth === 0) return null;
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
return c.toDataURL('image/png');
"""


def frame_hash():
    data = driver.execute_script(FRAME_HASH)
    return hashlib.sha256(data.encode()).hexdigest() if data else None


try:
    driver.get(url)
    wait.until(EC.visibility_of_element_located((By.ID, "login")))
    seen["login_shown"] = True
    driver.find_element(By.ID, "token").send_keys("not-the-token")
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait.until(lambda d: d.find_element(By.ID, "login-error").text != "")
    seen["wrong_token_refused"] = driver.find_element(By.ID, "console").get_attribute("hidden") is not None
    driver.save_screenshot(f"{out}/console-login.png")

    token_box = driver.find_element(By.ID, "token")
    token_box.clear()
    token_box.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait.until(EC.visibility_of_element_located((By.ID, "console")))
    wait.until(lambda d: frame_hash() is not None)
    hashes = set()
    t = time.time()
    while time.time() - t < 10 and len(hashes) < 3:
        h = frame_hash()
        if h:
            hashes.add(h)
        time.sleep(0.3)
    seen["distinct_frames"] = len(hashes)
    wait.until(lambda d: "bundle" in d.find_element(By.ID, "summary").text)
    seen["summary_before"] = driver.find_element(By.ID, "summary").text
    driver.save_screenshot(f"{out}/console.png")

    driver.find_element(By.CSS_SELECTOR, '#modes button[data-mode="detect"]').click()
    wait.until(lambda d: d.find_element(By.ID, "summary").text.startswith("detect"))
    wait.until(
        lambda d: d.find_element(By.CSS_SELECTOR, '#modes button[data-mode="detect"]').get_attribute("class") == "on"
    )
    seen["mode_after"] = driver.find_element(By.ID, "summary").text.split(" ")[0]

    # Calibrate on the (real) faces in view for 3 s: the threshold and the camera's sharpness.
    seconds = driver.find_element(By.ID, "cal-seconds")
    seconds.clear()
    seconds.send_keys("3")
    driver.find_element(By.CSS_SELECTOR, "#calibrate-form button").click()
    wait.until(lambda d: d.find_element(By.ID, "message").text.startswith("calibrating"))
    wait.until(lambda d: not d.find_element(By.ID, "message").text.startswith("calibrating"))
    seen["calibration_message"] = driver.find_element(By.ID, "message").text
    wait.until(lambda d: "(calibration)" in d.find_element(By.ID, "status").text)
    seen["threshold_after_calibration"] = [
        line for line in driver.find_element(By.ID, "status").text.splitlines() if "threshold" in line
    ]

    driver.find_element(By.ID, "rollback").click()
    wait.until(lambda d: "rolled back" in d.find_element(By.ID, "message").text)
    seen["rollback_message"] = driver.find_element(By.ID, "message").text
    time.sleep(1.5)
    seen["summary_after"] = driver.find_element(By.ID, "summary").text
    driver.save_screenshot(f"{out}/console-after-rollback.png")
    # Script errors on the page (the 401s before login are expected and listed too).
    seen["page_errors"] = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
finally:
    driver.quit()
print(json.dumps(seen))
