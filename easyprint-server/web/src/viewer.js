// The three.js scene behind the preview: a model (STL, 3MF, OBJ) on a build plate with orbit
// controls, or one G-code layer's extrusion and travel moves.
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { STLLoader } from "three/examples/jsm/loaders/STLLoader.js";
import { ThreeMFLoader } from "three/examples/jsm/loaders/3MFLoader.js";
import { OBJLoader } from "three/examples/jsm/loaders/OBJLoader.js";

export class Viewer {
  constructor(host) {
    this.host = host;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(devicePixelRatio, 2));
    host.append(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0xf4f5f7);
    // Printers think in Z-up.
    THREE.Object3D.DEFAULT_UP.set(0, 0, 1);
    this.camera = new THREE.PerspectiveCamera(45, 1, 0.1, 5000);
    this.camera.up.set(0, 0, 1);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x666677, 2.2));
    const sun = new THREE.DirectionalLight(0xffffff, 1.5);
    sun.position.set(100, -150, 250);
    this.scene.add(sun);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.addEventListener("change", () => this.render());
    this.content = new THREE.Group();
    this.scene.add(this.content);
    this.resize = () => {
      const w = host.clientWidth || 600, h = host.clientHeight || 400;
      this.renderer.setSize(w, h);
      this.camera.aspect = w / h;
      this.camera.updateProjectionMatrix();
      this.render();
    };
    this.observer = new ResizeObserver(this.resize);
    this.observer.observe(host);
    this.resize();
  }

  clear() {
    for (const child of [...this.content.children]) {
      this.content.remove(child);
      child.traverse((o) => {
        o.geometry?.dispose();
        o.material?.dispose?.();
      });
    }
  }

  /** Shows a model file; returns its size {x, y, z} in mm. */
  showModel(name, data) {
    this.clear();
    const ext = name.toLowerCase().split(".").pop();
    let object;
    const material = new THREE.MeshStandardMaterial({ color: 0x2e86de, metalness: 0.1, roughness: 0.6 });
    if (ext === "stl") {
      object = new THREE.Mesh(new STLLoader().parse(data), material);
    } else if (ext === "3mf") {
      object = new ThreeMFLoader().parse(data);
    } else if (ext === "obj") {
      object = new OBJLoader().parse(new TextDecoder().decode(data));
      object.traverse((o) => o.isMesh && (o.material = material));
    } else {
      throw new Error(`no preview for .${ext} files`);
    }
    const box = new THREE.Box3().setFromObject(object);
    const size = box.getSize(new THREE.Vector3());
    const center = box.getCenter(new THREE.Vector3());
    // Centre on the plate, resting on z = 0.
    object.position.sub(new THREE.Vector3(center.x, center.y, box.min.z));
    this.content.add(object);
    this.addPlate(Math.max(size.x, size.y) * 1.6 || 100);
    this.frame(size);
    return size;
  }

  /** Frames the G-code's bounds (`{min: [x, y, z], max: [x, y, z]}`) once. */
  frameBounds(bounds) {
    const [x0, y0] = bounds.min, [x1, y1] = bounds.max;
    const size = Math.max(x1 - x0, y1 - y0, 10);
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    this.controls.target.set(cx, cy, 0);
    this.camera.position.set(cx, cy - size * 0.9, size * 1.1);
    this.controls.update();
  }

  /** Shows one layer: `{z, extrude: [x0, y0, x1, y1, ...], travel: [...]}` (flat segment lists). */
  showLayer(layer) {
    this.clear();
    const z = Number(layer.z ?? 0);
    const lines = (flat, color, opacity) => {
      const count = Math.floor((flat?.length ?? 0) / 4);
      const points = new Float32Array(count * 6);
      for (let i = 0; i < count; i++) {
        points.set([flat[4 * i], flat[4 * i + 1], z, flat[4 * i + 2], flat[4 * i + 3], z], 6 * i);
      }
      const geometry = new THREE.BufferGeometry();
      geometry.setAttribute("position", new THREE.BufferAttribute(points, 3));
      const material = new THREE.LineBasicMaterial({ color, transparent: opacity < 1, opacity });
      return new THREE.LineSegments(geometry, material);
    };
    this.content.add(lines(layer.extrude, 0xe4572e, 1), lines(layer.travel, 0x7f8c8d, 0.35));
    this.render();
  }

  addPlate(size) {
    const grid = new THREE.GridHelper(size, 10, 0x999999, 0xcccccc);
    grid.rotation.x = Math.PI / 2;
    this.content.add(grid);
  }

  frame(size) {
    const r = Math.max(size.x, size.y, size.z) || 20;
    this.controls.target.set(0, 0, size.z / 2);
    this.camera.position.set(r * 1.4, -r * 1.8, r * 1.3 + size.z / 2);
    this.controls.update();
    this.render();
  }

  render() {
    this.renderer.render(this.scene, this.camera);
  }

  dispose() {
    this.observer.disconnect();
    this.clear();
    this.controls.dispose();
    this.renderer.dispose();
    this.renderer.domElement.remove();
  }
}
